"""erasure items: fingerprint of the key a subject hash was made with

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('erasure_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_fingerprint', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('erasure_items', schema=None) as batch_op:
        batch_op.drop_column('key_fingerprint')
