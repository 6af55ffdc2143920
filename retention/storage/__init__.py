"""The databases: engines, the control database's schema and queries, and bulk SQL per dialect."""
