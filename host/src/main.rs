fn main() -> std::process::ExitCode {
    powerbank::cli::main()
}
