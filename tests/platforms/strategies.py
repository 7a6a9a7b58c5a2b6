"""Hypothesis strategies shared by the platform tests."""

from hypothesis import strategies as st

#: Any JSON value, small: what a random (but authentic) platform payload may hold in a field.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
