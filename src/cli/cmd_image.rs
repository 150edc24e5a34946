//! `scar image build DIR FUNCTION --to REGISTRY/REPO[:TAG]`: the image assembly of a function,
//! on its own. Progress on stderr; the digest (or `--json`) on stdout.
//! `scar image config DIR FUNCTION`: the supervisor configuration that assembly writes.

use std::path::PathBuf;

use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::{AwsArgs, session};
use crate::image::build;
use crate::image::reference::ImageRef;
use crate::model::attrs::{Attrs, ImageAttrs};
use crate::model::{Address, ResourceKind};

/// The arguments of `scar image build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The function.
    pub function: String,
    /// Where to push, such as `123456789012.dkr.ecr.us-east-1.amazonaws.com/tools:v1`.
    #[arg(long, value_name = "REGISTRY/REPO[:TAG]")]
    pub to: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `scar image config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The function.
    pub function: String,
}

/// The `function_image` the manifests give function `name`, as `scar apply` would build it
/// (for a `prebuilt` function too: its image is then the base).
fn planned_image(
    set: &crate::manifest::load::ManifestSet,
    name: &str,
) -> Result<crate::model::DesiredResource, String> {
    let stack = set.stack().ok_or("no Stack manifest")?;
    let doc = set
        .functions
        .iter()
        .find(|f| f.value.metadata.name == name)
        .ok_or_else(|| format!("the stack has no function `{name}`"))?;
    // The script as the loader read it (inside the stack's directories, checked).
    let script = set.script_of(doc);
    Ok(crate::model::function_image(
        &stack.value.metadata.name,
        &stack.value.spec,
        &doc.value,
        script,
        &Address::new(ResourceKind::FunctionImage, name),
    ))
}

/// `scar image config`: the planned `config` of the function's image, as JSON on stdout.
pub(super) fn config(args: &ConfigArgs, out: &Output) -> Outcome {
    let (dir, name) = (args.dir.as_path(), args.function.as_str());
    let (set, _, _) = super::cmd_ops::load_function(dir, name, out)?;
    match planned_image(&set, name) {
        Ok(image) => {
            use crate::model::attrs::Attrs as _;
            let config = crate::model::attrs::ImageAttrs::from_attrs(&image.address, &image.attrs)
                .map(|i| i.config)
                .map_err(|e| Failure::Message(e.to_string()))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&config).unwrap_or_default()
            );
            Ok(Done::Success)
        }
        Err(e) => {
            out.error(&e);
            Err(Failure::Reported)
        }
    }
}

/// `scar image build`.
pub(super) fn build(args: &BuildArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (dir, name, to, as_json) = (
        args.dir.as_path(),
        args.function.as_str(),
        args.to.as_str(),
        args.json,
    );
    let (set, desired, _) = super::cmd_ops::load_function(dir, name, out)?;
    let fail = |msg: &str| {
        out.error(msg);
        Err(Failure::Reported)
    };
    let target = match ImageRef::parse(to) {
        Ok(t) if t.digest.is_none() => t,
        Ok(_) => return fail("--to names a repository and optionally a tag, not a digest"),
        Err(e) => return fail(&format!("--to: {e}")),
    };
    let spec = match planned_image(&set, name).and_then(|i| {
        ImageAttrs::from_attrs(&i.address, &i.attrs)
            .map_err(|e| e.to_string())?
            .spec(target)
    }) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let rt = session::runtime()?;
    let result = rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let registry = cloud.registry()?;
        eprintln!(
            "building {} on {} for linux/{}",
            spec.target, spec.base, spec.architecture
        );
        build::build(&registry, &spec, &|line| eprintln!("  {line}"))
            .await
            .map_err(|e| e.to_string())
    });
    let built = match result {
        Ok(b) => b,
        Err(e) => return fail(&format!("building the image of `{name}`: {e}")),
    };
    if built.uploaded_blobs == 0 && !built.pushed_manifest {
        eprintln!(
            "nothing to push: {} already has this image",
            spec.target.name()
        );
    } else {
        eprintln!(
            "pushed {} blob(s), {} bytes{}{}",
            built.uploaded_blobs,
            built.uploaded_bytes,
            if built.mounted_blobs > 0 {
                format!(", mounted {}", built.mounted_blobs)
            } else {
                String::new()
            },
            if built.pushed_manifest {
                ", and the manifest"
            } else {
                ""
            }
        );
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&built).unwrap_or_default()
        );
    } else {
        println!("{}", built.digest);
    }
    Ok(Done::Success)
}
