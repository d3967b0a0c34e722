//! One file per subcommand, each with `execute(self)`.

pub mod history;
pub mod invoke;
pub mod module;
pub mod route;
pub mod up;
