"""Deployment: the merge template (resources.json) and the script that packages a stage."""
