"""What people read: the compliance report, renderings of a plan, failure alerts."""
