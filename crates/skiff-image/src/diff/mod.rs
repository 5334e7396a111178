//! From directories back to layers: [`write_layer_from_dir`] (a reproducible layer tar with its
//! diffID and blob digest) and [`changes`] (the A/C/D list of an overlay upper directory).

mod changes;
mod write;

pub use changes::{changes, Change, ChangeKind};
pub use write::{write_layer_from_dir, LayerDigests, WriteError, WriteOptions};
