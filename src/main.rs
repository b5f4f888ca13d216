fn main() -> std::process::ExitCode {
    lmsinfra::run()
}
