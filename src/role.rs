//! Who the operator is to shiplog (`SHIPLOG_ROLE`), and what each role may do. The role is a
//! claim of the person at the keyboard; what enforces it is said where it matters (for
//! breakglass on Redis, the ACL user).

/// A role, from the least to the most trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Watches and acknowledges alerts.
    Viewer,
    /// Also acts on deployments: cancel, redeploy, promote, roll back.
    Operator,
    /// Everything.
    SuperAdmin,
    /// Breaks glass, and nothing else that changes the world.
    BreakglassAdmin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "super_admin" => Some(Role::SuperAdmin),
            "breakglass_admin" => Some(Role::BreakglassAdmin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::SuperAdmin => "super_admin",
            Role::BreakglassAdmin => "breakglass_admin",
        }
    }

    pub fn may_break_glass(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::BreakglassAdmin)
    }

    /// Cancel, redeploy, promote and roll back.
    pub fn may_act(self) -> bool {
        matches!(self, Role::Operator | Role::SuperAdmin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_operators_and_super_admins_act_and_only_admins_break_glass() {
        let all = [
            Role::Viewer,
            Role::Operator,
            Role::SuperAdmin,
            Role::BreakglassAdmin,
        ];
        let acting: Vec<_> = all.iter().filter(|r| r.may_act()).collect();
        assert_eq!(acting, [&Role::Operator, &Role::SuperAdmin]);
        let breaking: Vec<_> = all.iter().filter(|r| r.may_break_glass()).collect();
        assert_eq!(breaking, [&Role::SuperAdmin, &Role::BreakglassAdmin]);
        for role in all {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse(" Operator "), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
    }
}
