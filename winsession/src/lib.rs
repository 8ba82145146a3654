//! winsession: the window session model. Captured resource state flows in from an X connection,
//! out to a `.gws` file, and back out to another X server as requests that recreate it.
#![forbid(unsafe_code)]
