//! Wire format of the GUIEVICT extension. Request bytes are encoded here for clients and decoded
//! here by the server side; reply bytes flow the other way. Pure functions over buffers.
#![forbid(unsafe_code)]
