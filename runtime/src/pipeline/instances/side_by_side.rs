//! Work of a step shared out over the instances' threads: instance 0 on the pipeline's
//! thread, the others on a rayon pool, the step waiting for all.

use super::Slot;

/// Run `call` on every instance, side by side (instance 0 on this thread, the others on
/// `pool`); results in instance order.
pub(super) fn each<T: Send>(
    pool: Option<&rayon::ThreadPool>,
    slots: &mut [Slot],
    call: impl Fn(usize, &mut Slot) -> T + Sync,
) -> Vec<T> {
    let Some(pool) = pool else {
        return slots.iter_mut().enumerate().map(|(i, slot)| call(i, slot)).collect();
    };
    let mut results: Vec<Option<T>> = slots.iter().map(|_| None).collect();
    pool.in_place_scope(|scope| {
        let mut work = slots.iter_mut().zip(results.iter_mut()).enumerate();
        let first = work.next();
        for (i, (slot, result)) in work {
            let call = &call;
            scope.spawn(move |_| *result = Some(call(i, slot)));
        }
        if let Some((i, (slot, result))) = first {
            *result = Some(call(i, slot));
        }
    });
    // A scope returns once every task ran (a panic in one is resumed here), so all are set.
    results.into_iter().flatten().collect()
}
