"""Infrastructure that every feature may import and that imports no feature.

Today it holds only the shared `MetaData` (`infra.metadata`). It is its own light package, not a
module of `russet.storage`, because `russet/storage/__init__.py` imports every store and the stores
import the features' tables: a feature's `tables.py` reaching into `russet.storage` would import
itself back half-made. The engine, migrations and secret box may follow here later.
"""
