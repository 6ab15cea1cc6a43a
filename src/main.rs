//! `doorman`: the server (`doorman`, `doorman serve`) and account administration
//! (`doorman user …`).

use std::process::ExitCode;

/// Only the server runs an async runtime; the command line waits for its writes on its own
/// thread.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") if args.len() <= 1 => rocket::execute(serve()),
        Some("user") => doorman::cli::user(&args[1..]),
        Some("keys") => doorman::cli::keys(&args[1..]),
        _ => {
            eprintln!("{}", doorman::cli::USAGE);
            ExitCode::from(2)
        }
    }
}

async fn serve() -> ExitCode {
    match doorman::rocket().launch().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            e.pretty_print();
            ExitCode::FAILURE
        }
    }
}
