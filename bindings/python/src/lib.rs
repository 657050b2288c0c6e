//! Python bindings of rewardkit.
