"""The daily run's steps up to the plan: snapshot, subject index, tagging, planning."""
