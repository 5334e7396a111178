//! Container log drivers (being written).
