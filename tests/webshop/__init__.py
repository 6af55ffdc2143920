"""A second test estate, shaped unlike the demo: an English web shop and a German subsidiary's HR.

It exists to exercise what the demo does not have: dates kept as text in two formats, composite primary keys,
a table with no personal data, a child table with no date of its own, and office phones shared by colleagues.
"""
