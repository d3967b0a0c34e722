//! `edgefn compile-worker` (hidden): compiles modules from stdin to stdout for the server
//! that started it, which kills it past the compile timeout.

use clap::Args;

/// The engine settings of the server that runs this worker.
#[derive(Args, Debug)]
pub struct CompileWorkerCommand {
    #[arg(long)]
    max_instance_memory_bytes: usize,
    #[arg(long)]
    max_concurrent_instances: u32,
    #[arg(long)]
    max_wasm_stack: usize,
}

impl CompileWorkerCommand {
    /// Compiles until stdin closes: 0 then, 1 if it could not go on.
    pub fn execute(self) -> std::process::ExitCode {
        let Self { max_instance_memory_bytes, max_concurrent_instances, max_wasm_stack } = self;
        let config =
            edgefn_runtime::RuntimeConfig { max_instance_memory_bytes, max_concurrent_instances, max_wasm_stack, ..Default::default() };
        std::process::ExitCode::from(edgefn_runtime::serve_compile_worker(config))
    }
}
