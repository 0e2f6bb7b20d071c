//! Criterion benchmarks of the wire protocol: parsing, serialization, validation.
//! `cargo bench --bench protocol`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rustircd::proto::names::{valid_channel, valid_nick};
use rustircd::proto::{CaseMapping, Line, Message};

fn message_parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("message_parsing");
    let lines = [
        ("privmsg", ":nick!user@host PRIVMSG #channel :Hello, world! How is everyone doing today?"),
        ("tagged", "@time=2026-11-27T14:11:58.123Z;msgid=abc123;+draft/reply=xyz :nick!user@host PRIVMSG #c :hi"),
        ("numeric", ":irc.example.net 353 nick = #channel :@op +voice user1 user2 user3 user4 user5 user6"),
        ("ping", "PING :irc.example.net"),
    ];
    for (name, line) in lines {
        g.bench_function(name, |b| b.iter(|| Message::parse(black_box(line)).unwrap()));
    }
    g.finish();
}

fn message_serialization(c: &mut Criterion) {
    let mut g = c.benchmark_group("message_serialization");
    g.bench_function("privmsg", |b| {
        b.iter(|| {
            Line::new()
                .source(black_box("nick!user@host"))
                .verb("PRIVMSG")
                .param(black_box("#channel"))
                .trailing(black_box("Hello, world! How is everyone doing today?"))
                .finish()
        })
    });
    g.bench_function("tagged", |b| {
        b.iter(|| {
            Line::new()
                .tag("time", Some(black_box("2026-11-27T14:11:58.123Z")))
                .tag("msgid", Some(black_box("abc123")))
                .source(black_box("nick!user@host"))
                .verb("PRIVMSG")
                .param("#c")
                .trailing(black_box("hi there"))
                .finish()
        })
    });
    g.finish();
}

fn validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("validation");
    g.bench_function("nick", |b| b.iter(|| valid_nick(black_box("Some_Nick[42]"), 30)));
    g.bench_function("channel", |b| b.iter(|| valid_channel(black_box("#rust-lang-community"), 50)));
    g.bench_function("casefold", |b| b.iter(|| CaseMapping::Rfc1459.fold(black_box("Some_Nick[42]"))));
    g.finish();
}

criterion_group!(benches, message_parsing, message_serialization, validation);
criterion_main!(benches);
