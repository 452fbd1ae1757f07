//! Latency distributions: `"5ms"` or `{ dist = "lognormal", p50 = "1ms", p99 = "8ms" }`.

use super::diag::did_you_mean;
use super::diag::Diag;
use super::fields::{Field, Section};
use super::model::Dist;
use super::tree::Kind;

const DIST_FORMS: &str = "a latency is a duration such as \"5ms\" (constant), or one of:\n  \
    { dist = \"constant\", value = \"5ms\" }\n  \
    { dist = \"uniform\", min = \"1ms\", max = \"5ms\" }\n  \
    { dist = \"normal\", mean = \"5ms\", stddev = \"1ms\" }\n  \
    { dist = \"lognormal\", p50 = \"1ms\", p99 = \"8ms\" }\n  \
    { dist = \"pareto\", min = \"1ms\", alpha = 1.5 }";

const DIST_NAMES: &[&str] = &["constant", "uniform", "normal", "lognormal", "pareto"];

/// The keys of each distribution, after `dist`, and a complete example.
fn dist_form(name: &str) -> Option<(&'static [&'static str], &'static str)> {
    match name {
        "constant" => Some((&["value"], "{ dist = \"constant\", value = \"5ms\" }")),
        "uniform" => Some((&["min", "max"], "{ dist = \"uniform\", min = \"1ms\", max = \"5ms\" }")),
        "normal" => Some((&["mean", "stddev"], "{ dist = \"normal\", mean = \"5ms\", stddev = \"1ms\" }")),
        "lognormal" => Some((&["p50", "p99"], "{ dist = \"lognormal\", p50 = \"1ms\", p99 = \"8ms\" }")),
        "pareto" => Some((&["min", "alpha"], "{ dist = \"pareto\", min = \"1ms\", alpha = 1.5 }")),
        _ => None,
    }
}

/// Reads a latency distribution.
pub(crate) fn read_dist(field: &Field) -> Result<Dist, Diag> {
    match &field.value.kind {
        Kind::Str(_) => Ok(Dist::Constant { value_ns: field.duration_ns()? }),
        Kind::Table(_) => read_dist_table(&field.section()?),
        _ => Err(field.type_error("a latency (a duration string or a distribution table)", DIST_FORMS)),
    }
}

fn read_dist_table(section: &Section) -> Result<Dist, Diag> {
    let kind_field = section.required("dist", "dist = \"lognormal\"").map_err(|e| e.help(DIST_FORMS))?;
    let name = kind_field.str("\"lognormal\"")?;
    let Some((keys, example)) = dist_form(name) else {
        let suggestion = did_you_mean(name, DIST_NAMES.iter().copied());
        return Err(kind_field
            .error(format!("unknown distribution `{name}` in `{}`", section.path))
            .help(format!("{suggestion}{DIST_FORMS}")));
    };
    let mut allowed = vec!["dist"];
    allowed.extend_from_slice(keys);
    let form_help = format!("a `{name}` distribution is written `{example}`");
    section.check_keys_with_help(&allowed, |_| false, &form_help)?;
    let get = |key: &str| section.required(key, &format!("{key} = …")).map_err(|e| e.help(form_help.clone()));
    build_dist(section, name, &get)
}

fn build_dist<'a>(
    section: &Section<'a>,
    name: &str,
    get: &dyn Fn(&str) -> Result<Field<'a>, Diag>,
) -> Result<Dist, Diag> {
    match name {
        "constant" => Ok(Dist::Constant { value_ns: get("value")?.duration_ns()? }),
        "uniform" => uniform(get),
        "normal" => Ok(Dist::Normal { mean_ns: get("mean")?.duration_ns()?, stddev_ns: get("stddev")?.duration_ns()? }),
        "lognormal" => lognormal(get),
        _ => pareto(section, get),
    }
}

fn uniform<'a>(get: &dyn Fn(&str) -> Result<Field<'a>, Diag>) -> Result<Dist, Diag> {
    let min_ns = get("min")?.duration_ns()?;
    let max_field = get("max")?;
    let max_ns = max_field.duration_ns()?;
    if min_ns > max_ns {
        return Err(max_field
            .error(format!("`{}` must be at least `min`", max_field.path))
            .help("a uniform distribution needs min <= max"));
    }
    Ok(Dist::Uniform { min_ns, max_ns })
}

fn lognormal<'a>(get: &dyn Fn(&str) -> Result<Field<'a>, Diag>) -> Result<Dist, Diag> {
    let p50_field = get("p50")?;
    let p50_ns = p50_field.duration_ns()?;
    if p50_ns == 0 {
        return Err(p50_field
            .error(format!("`{}` must be above zero", p50_field.path))
            .help("a lognormal distribution needs 0 < p50 <= p99; for a zero latency write \"0\""));
    }
    let p99_field = get("p99")?;
    let p99_ns = p99_field.duration_ns()?;
    if p99_ns < p50_ns {
        return Err(p99_field
            .error(format!("`{}` must be at least `p50`", p99_field.path))
            .help("a lognormal distribution needs 0 < p50 <= p99"));
    }
    Ok(Dist::log_normal(p50_ns, p99_ns))
}

fn pareto<'a>(section: &Section<'a>, get: &dyn Fn(&str) -> Result<Field<'a>, Diag>) -> Result<Dist, Diag> {
    let min_ns = get("min")?.duration_ns()?;
    let alpha_field = get("alpha")?;
    let alpha = alpha_field.float("1.5")?;
    if alpha <= 0.0 {
        return Err(alpha_field
            .error(format!("`{}.alpha` must be above zero, found {alpha}", section.path))
            .help("write e.g. `alpha = 1.5` (smaller is heavier-tailed)"));
    }
    Ok(Dist::Pareto { min_ns, alpha })
}
