pub mod customer;
pub mod sio;
