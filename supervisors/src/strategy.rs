//! Restart strategies (OTP `one_for_one`, `one_for_all`, `rest_for_one`).

/// Which siblings are restarted together with a failed child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the failed child is restarted.
    #[default]
    OneForOne,
    /// All children are stopped (reverse start order) and restarted (start order).
    OneForAll,
    /// The children started after the failed one are stopped (reverse order),
    /// then the failed one and those are restarted in order.
    RestForOne,
}

impl Strategy {
    /// Indices of the siblings to stop when child `failed` of `count` children
    /// fails, in the order they must be stopped (reverse start order).
    pub fn siblings_to_stop(self, failed: usize, count: usize) -> Vec<usize> {
        match self {
            Self::OneForOne => Vec::new(),
            Self::OneForAll => (0..count).rev().filter(|i| *i != failed).collect(),
            Self::RestForOne => (failed + 1..count).rev().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Strategy;

    #[test]
    fn siblings_are_stopped_in_reverse_start_order() {
        assert!(Strategy::OneForOne.siblings_to_stop(1, 4).is_empty());
        assert_eq!(Strategy::OneForAll.siblings_to_stop(1, 4), vec![3, 2, 0]);
        assert_eq!(Strategy::RestForOne.siblings_to_stop(1, 4), vec![3, 2]);
        assert!(Strategy::RestForOne.siblings_to_stop(3, 4).is_empty());
    }
}
