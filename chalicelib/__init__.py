"""Herald: a serverless notifications API (Chalice, DynamoDB, SQS)."""
