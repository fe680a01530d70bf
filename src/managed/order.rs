//! Start order of managed components: dependencies first, config order otherwise.

use std::collections::{BTreeSet, HashMap};

use crate::settings::ComponentSettings;

/// Names of the managed components (those with `run`), each after the
/// managed components it `depends_on` (directly or through unmanaged ones),
/// otherwise in config order. Unknown names are ignored; components on a
/// cycle (rejected by validation) come last, in config order.
pub fn start_order(components: &[ComponentSettings]) -> Vec<String> {
    let index: HashMap<&str, usize> = components
        .iter()
        .enumerate()
        .map(|(at, component)| (component.name.as_str(), at))
        .collect();
    let deps: Vec<Vec<usize>> = components
        .iter()
        .map(|component| {
            component
                .depends_on
                .iter()
                .filter_map(|name| index.get(name.as_str()).copied())
                .collect()
        })
        .collect();
    // Kahn's algorithm over every component (so unmanaged ones pass
    // ordering through), always taking the earliest ready one.
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); components.len()];
    for (at, list) in deps.iter().enumerate() {
        for &dep in list {
            if let Some(entry) = dependents.get_mut(dep) {
                entry.push(at);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..components.len())
        .filter(|at| remaining.get(*at) == Some(&0))
        .collect();
    let mut order = Vec::with_capacity(components.len());
    while let Some(at) = ready.pop_first() {
        order.push(at);
        for &next in dependents.get(at).map(Vec::as_slice).unwrap_or_default() {
            if let Some(count) = remaining.get_mut(next) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.insert(next);
                }
            }
        }
    }
    let placed: BTreeSet<usize> = order.iter().copied().collect();
    order.extend((0..components.len()).filter(|at| !placed.contains(at)));
    order
        .into_iter()
        .filter_map(|at| components.get(at))
        .filter(|component| component.is_managed())
        .map(|component| component.name.clone())
        .collect()
}
