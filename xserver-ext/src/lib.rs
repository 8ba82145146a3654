//! The GUIEVICT X server extension. Requests from X clients arrive through the server's dispatch
//! table; replies describing the requesting client's own resources flow back.
