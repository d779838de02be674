"""Data access: every DynamoDB read and write Herald makes lives in this package."""
