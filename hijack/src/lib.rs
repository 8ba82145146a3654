//! The hijack library. Loaded into an application (by `dlopen` through ptrace, or by
//! `guievict run`), it takes the application's X connection fd, puts guimux between the
//! application and the server, and serves control commands on a unix socket.
