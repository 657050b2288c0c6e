//! Node bindings of rewardkit.
