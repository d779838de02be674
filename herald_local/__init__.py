"""Local development and test support: the embedded AWS stack, DynamoDB Local, bootstrap.

Never imported by app.py and not packaged into the Lambda zip.
"""
