//! `doorman` / `doorman serve`: runs the server.

use std::process::ExitCode;

#[rocket::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some(other) => {
            eprintln!("doorman: unknown command `{other}`\nusage: doorman [serve]");
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
