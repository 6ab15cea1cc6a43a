//! `doorman`: the server (`doorman`, `doorman serve`) and account administration
//! (`doorman user …`).

use std::process::ExitCode;

#[rocket::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") if args.len() <= 1 => serve().await,
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
