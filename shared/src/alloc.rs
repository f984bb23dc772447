//! Counts the bytes each thread allocates, so that work driven by user input
//! (a transform's evaluation) can be stopped once it has made more than its
//! budget, whatever part of a library made the allocations.
//!
//! Each binary installs it around its allocator:
//! `#[global_allocator] static A: Counting<System> = Counting(System);`.
//! Without it `allocated()` stays 0 and only the other budgets hold.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
}

/// Bytes this thread has allocated since it started (never decreases).
pub fn allocated() -> u64 {
    ALLOCATED.with(Cell::get)
}

fn count(bytes: usize) {
    // `try_with`: a thread being torn down may still allocate.
    let _ = ALLOCATED.try_with(|c| c.set(c.get().wrapping_add(bytes as u64)));
}

/// An allocator that counts what each thread allocates, then asks `A`.
pub struct Counting<A>(pub A);

// SAFETY: every call is forwarded to `A` unchanged; counting touches only a
// thread-local `Cell` with a const initialiser, which never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}
