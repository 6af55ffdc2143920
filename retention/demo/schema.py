"""Table definitions of the demo estate: three operational databases of a Danish course provider.

Defined once in SQLAlchemy Core so that the same tables are created on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import sqlalchemy as sa

DEMO_SOURCES = ("enrolment", "newsletter", "elearning")


def _enrolment() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "customers",
        md,
        sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_number", sa.String(20), nullable=False, unique=True),
        sa.Column("full_name", sa.String(120), nullable=False),
        sa.Column("email", sa.String(200)),
        sa.Column("phone", sa.String(40)),
        sa.Column("street", sa.String(200)),
        sa.Column("postal_code", sa.String(10)),
        sa.Column("city", sa.String(80)),
        sa.Column("birth_date", sa.Date),
        sa.Column("employer", sa.String(120)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_contact_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, index=True),
    )
    sa.Table(
        "enrolments",
        md,
        sa.Column("enrolment_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.customer_id"), nullable=False, index=True),
        sa.Column("course_code", sa.String(20), nullable=False),
        sa.Column("course_start", sa.Date),
        sa.Column("course_end", sa.Date),
        sa.Column("enrolled_at", sa.DateTime, nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("jobcenter", sa.String(80)),
        sa.Column("special_needs", sa.Text),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
    )
    sa.Table(
        "invoices",
        md,
        sa.Column("invoice_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("enrolment_id", sa.Integer, sa.ForeignKey("enrolments.enrolment_id"), nullable=False, index=True),
        sa.Column("invoice_number", sa.String(20), nullable=False, unique=True),
        sa.Column("invoice_date", sa.Date, nullable=False),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("billing_name", sa.String(120)),
        sa.Column("billing_address", sa.String(250)),
    )
    sa.Table(
        "payments",
        md,
        sa.Column("payment_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoices.invoice_id"), nullable=False, index=True),
        sa.Column("paid_at", sa.DateTime, nullable=False),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("bank_account", sa.String(40)),
    )
    sa.Table(
        "partner_shares",
        md,
        sa.Column("share_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("enrolment_id", sa.Integer, sa.ForeignKey("enrolments.enrolment_id"), nullable=False, index=True),
        sa.Column("partner", sa.String(60), nullable=False),
        sa.Column("shared_at", sa.DateTime, nullable=False),
        sa.Column("data_shared", sa.String(200)),
    )
    return md


def _newsletter() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "subscribers",
        md,
        sa.Column("subscriber_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("full_name", sa.String(120)),
        sa.Column("phone", sa.String(40)),
        sa.Column("consent_at", sa.DateTime, nullable=False),
        sa.Column("consent_text", sa.String(200)),
        sa.Column("unsubscribed_at", sa.DateTime),
        sa.Column("signup_ip", sa.String(45)),
        sa.Column("updated_at", sa.DateTime, index=True),
    )
    sa.Table(
        "sends",
        md,
        sa.Column("send_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.subscriber_id"),
            nullable=False,
            index=True,
        ),
        sa.Column("campaign", sa.String(80), nullable=False),
        sa.Column("sent_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "events",
        md,
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.subscriber_id"),
            nullable=False,
            index=True,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("ip", sa.String(45)),
        sa.Column("user_agent", sa.String(250)),
    )
    sa.Table(
        "interest_profiles",
        md,
        sa.Column("profile_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.subscriber_id"),
            nullable=False,
            index=True,
        ),
        sa.Column("interests", sa.String(250)),
        sa.Column("score", sa.Integer),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    return md


def _elearning() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "accounts",
        md,
        sa.Column("account_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("login_email", sa.String(200), nullable=False),
        sa.Column("username", sa.String(60), nullable=False, unique=True),
        sa.Column("full_name", sa.String(120)),
        sa.Column("phone", sa.String(40)),
        sa.Column("customer_number", sa.String(20)),
        sa.Column("password_hash", sa.String(128)),
        sa.Column("last_login_at", sa.DateTime),
        sa.Column("last_login_ip", sa.String(45)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, index=True),
    )
    sa.Table(
        "progress",
        md,
        sa.Column("progress_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.account_id"), nullable=False, index=True),
        sa.Column("course_code", sa.String(20), nullable=False),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("percent", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "exam_results",
        md,
        sa.Column("result_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.account_id"), nullable=False, index=True),
        sa.Column("exam", sa.String(80), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("taken_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "forum_posts",
        md,
        sa.Column("post_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.account_id"), nullable=False, index=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("posted_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "forum_comments",
        md,
        sa.Column("comment_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("post_id", sa.Integer, sa.ForeignKey("forum_posts.post_id"), nullable=False, index=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.account_id"), nullable=False, index=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("posted_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "uploads",
        md,
        sa.Column("upload_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.account_id"), nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("caption", sa.String(250)),
        sa.Column("uploaded_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "community_memberships",
        md,
        sa.Column("membership_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.account_id"), nullable=False, index=True),
        sa.Column("community", sa.String(80), nullable=False),
        sa.Column("profile_url", sa.String(250)),
        sa.Column("joined_at", sa.DateTime, nullable=False),
        sa.Column("withdrawn_at", sa.DateTime),
    )
    return md


def demo_metadata(source: str) -> sa.MetaData:
    """A fresh MetaData for one demo source (fresh so that callers may bind it to any engine)."""
    builders = {"enrolment": _enrolment, "newsletter": _newsletter, "elearning": _elearning}
    try:
        return builders[source]()
    except KeyError:
        raise ValueError(f"unknown demo source {source!r}; expected one of {', '.join(DEMO_SOURCES)}") from None
