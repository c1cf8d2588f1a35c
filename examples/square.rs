//! The classic first example of Python's `multiprocessing.Pool`, in Rust.
//!
//! ```text
//! cargo run --release --example square
//! [1, 4, 9, 16, 25]
//! ```

fn main() -> Result<(), stealpool::BuildError> {
    let pool = stealpool::Pool::new(4)?;
    let squares = pool.map(&[1, 2, 3, 4, 5], |x| x * x);
    println!("{squares:?}");
    Ok(())
}
