//! `lmsinfra man`: the man pages.

use crate::cli::ManArgs;
use crate::error::{Error, Outcome};
use crate::printer::Printer;

pub(super) fn man(printer: Printer, args: ManArgs) -> Result<Outcome, Error> {
    let command = crate::cli::command();
    let Some(dir) = args.write else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .expect("a man page renders into memory");
        printer.data(String::from_utf8_lossy(&page).trim_end())?;
        return Ok(Outcome::Success);
    };
    std::fs::create_dir_all(&dir).map_err(|source| Error::FileWrite {
        path: dir.clone(),
        source,
    })?;
    clap_mangen::generate_to(command, &dir).map_err(|source| Error::FileWrite {
        path: dir.clone(),
        source,
    })?;
    Ok(Outcome::Success)
}
