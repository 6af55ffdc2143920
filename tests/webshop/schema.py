"""Table definitions of the webshop estate, defined once in SQLAlchemy Core for SQLite, PostgreSQL and MariaDB.

Some dates are deliberately TEXT (String) columns on every backend, in the formats the applications wrote
them in, because real estates do that and the engine must not assume a DateTime column.
"""

from __future__ import annotations

import sqlalchemy as sa

WEBSHOP_SOURCES = ("shop", "hr")

SHOP_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
"""customers.created_at and customers.last_seen_at."""
SHOP_DATE_FORMAT = "%Y-%m-%d"
"""orders.order_date."""
HR_DATE_FORMAT = "%d.%m.%Y"
"""employees.hired_on."""

TEXT_DATE_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "shop": {"customers": ("created_at", "last_seen_at"), "orders": ("order_date",)},
    "hr": {"employees": ("hired_on",)},
}
"""Date columns stored as text, per source and table: tests check that they really are text columns."""


def _shop() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "customers",
        md,
        sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("first_name", sa.String(60), nullable=False),
        sa.Column("last_name", sa.String(60), nullable=False),
        sa.Column("email", sa.String(200), unique=True),
        sa.Column("phone", sa.String(40)),
        sa.Column("street", sa.String(200)),
        sa.Column("city", sa.String(80)),
        sa.Column("postcode", sa.String(10)),
        sa.Column("created_at", sa.String(19), nullable=False),
        sa.Column("last_seen_at", sa.String(19)),
        sa.Column("marketing_opt_in", sa.Boolean, nullable=False),
    )
    sa.Table(
        "products",
        md,
        sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(120), nullable=False, unique=True),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
    )
    sa.Table(
        "orders",
        md,
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.customer_id"), nullable=False, index=True),
        sa.Column("order_date", sa.String(10), nullable=False),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
        sa.Column("delivery_name", sa.String(120)),
        sa.Column("delivery_address", sa.String(250)),
    )
    sa.Table(
        "order_lines",
        md,
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.order_id"), primary_key=True, autoincrement=False),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("products.product_id"), nullable=False, index=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("gift_message", sa.Text),
    )
    sa.Table(
        "wishlist",
        md,
        sa.Column(
            "customer_id", sa.Integer, sa.ForeignKey("customers.customer_id"), primary_key=True, autoincrement=False
        ),
        sa.Column(
            "product_id", sa.Integer, sa.ForeignKey("products.product_id"), primary_key=True, autoincrement=False
        ),
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.Column("note", sa.String(250)),
    )
    return md


def _hr() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "employees",
        md,
        sa.Column("employee_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("first_name", sa.String(60), nullable=False),
        sa.Column("last_name", sa.String(60), nullable=False),
        sa.Column("email", sa.String(200), nullable=False, unique=True),
        sa.Column("office_phone", sa.String(40)),
        sa.Column("home_address", sa.String(250)),
        sa.Column("postcode", sa.String(5)),
        sa.Column("birth_date", sa.Date),
        sa.Column("hired_on", sa.String(10), nullable=False),
        sa.Column("employment_end", sa.Date),
        sa.Column("geaendert_am", sa.DateTime),  # stamped by the HR system on every change
    )
    sa.Table(
        "salary_slips",
        md,
        sa.Column("slip_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("employee_id", sa.Integer, sa.ForeignKey("employees.employee_id"), nullable=False, index=True),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("bank_account", sa.String(34)),
    )
    return md


def webshop_metadata(source: str) -> sa.MetaData:
    """A fresh MetaData for one webshop source (fresh so that callers may bind it to any engine)."""
    builders = {"shop": _shop, "hr": _hr}
    try:
        return builders[source]()
    except KeyError:
        raise ValueError(f"unknown webshop source {source!r}; expected one of {', '.join(WEBSHOP_SOURCES)}") from None
