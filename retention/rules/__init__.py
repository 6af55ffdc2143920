"""The rules of the policy, each once and pure: used by the daily plan, subject requests and the access export."""
