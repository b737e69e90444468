//! The baseline band index (stub).
