//! `--chmod` of COPY/ADD as the copy applies it to each copied entry: an
//! octal mode replaces the entry's mode; chmod's symbolic clauses
//! (`go-w`, `u=rw,g=r`, `a+X`, `g=u`) change the entry's own mode, as
//! BuildKit's fsutil copy does with a umask of 0. The clauses are parsed
//! into [`Step`]s by `lower::copy::flags`.

/// A `--chmod` mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChmodSpec {
    /// An octal mode, at most 07777.
    Octal(u32),
    /// Symbolic clauses, as written and as the steps they make.
    Symbolic { text: String, steps: Vec<Step> },
}

/// One change a symbolic mode makes, applied in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Clears these bits.
    Clear(u32),
    /// Sets these bits.
    Set(u32),
    /// `X`: sets these bits on a directory or on an entry that was
    /// executable by someone before any step.
    SetIfExec(u32),
    /// `u`, `g` or `o` as a permission (`g=u`, `o+g`): the permission bits
    /// the class `from` has by now, added to, removed from or assigned to
    /// the classes `to`.
    Copy {
        from: Class,
        to: Classes,
        how: CopyHow,
    },
}

/// A class of users a mode gives permissions to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    User,
    Group,
    Other,
}

impl Class {
    fn shift(self) -> u32 {
        match self {
            Class::User => 6,
            Class::Group => 3,
            Class::Other => 0,
        }
    }
}

/// The classes a copied permission goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Classes {
    pub user: bool,
    pub group: bool,
    pub other: bool,
}

impl Classes {
    fn shifts(self) -> impl Iterator<Item = u32> {
        [(self.user, 6), (self.group, 3), (self.other, 0)]
            .into_iter()
            .filter_map(|(on, shift)| on.then_some(shift))
    }
}

/// The operator of a clause copying a class's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyHow {
    Add,
    Remove,
    Assign,
}

impl ChmodSpec {
    /// The mode (permission, set-id and sticky bits) an entry whose own
    /// mode is `mode` gets.
    pub(crate) fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let steps = match self {
            ChmodSpec::Octal(bits) => return bits & 0o7777,
            ChmodSpec::Symbolic { steps, .. } => steps,
        };
        let original = mode & 0o7777;
        let mut mode = original;
        for step in steps {
            match *step {
                Step::Clear(bits) => mode &= !bits,
                Step::Set(bits) => mode |= bits,
                Step::SetIfExec(bits) => {
                    if is_dir || original & 0o111 != 0 {
                        mode |= bits;
                    }
                }
                Step::Copy { from, to, how } => {
                    let value = (mode >> from.shift()) & 0o7;
                    if how != CopyHow::Add {
                        let cleared = if how == CopyHow::Assign { 0o7 } else { value };
                        for shift in to.shifts() {
                            mode &= !(cleared << shift);
                        }
                    }
                    if how != CopyHow::Remove {
                        for shift in to.shifts() {
                            mode |= value << shift;
                        }
                    }
                }
            }
        }
        mode & 0o7777
    }

    /// The spec's part of the copy's definition (an octal mode keeps the
    /// key it had before symbolic modes).
    pub(crate) fn key(spec: Option<&ChmodSpec>) -> Vec<u8> {
        match spec {
            None => u32::MAX.to_le_bytes().to_vec(),
            Some(ChmodSpec::Octal(bits)) => bits.to_le_bytes().to_vec(),
            Some(ChmodSpec::Symbolic { text, .. }) => format!("symbolic:{text}").into_bytes(),
        }
    }
}
