//! `skiff commit [-a AUTHOR] [-c CHANGE]... [-m MSG] [-p=false] CONTAINER [REPO[:TAG]]`:
//! `POST /commit`, printing the new image's ID as docker does.

use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::Res;
use crate::client::{Body, Client, Query};

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG] to name the image.
    pub reference: Option<String>,
}

pub fn commit(c: &Client, a: CommitArgs) -> Res<i32> {
    let mut q = Query::new()
        .add("container", &a.container)
        .opt("repo", a.reference.as_deref())
        .opt("comment", a.message.as_deref())
        .opt("author", a.author.as_deref())
        .add_if(!a.pause, "pause", "0");
    for ch in &a.change {
        q = q.add("changes", ch);
    }
    let v: Value = c.json(Method::POST, &q.to("/commit"), Body::Empty)?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}
