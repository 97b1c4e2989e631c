//! `cargo bench -p domain`: national-code parsing and ranking 10,000 office-shift rows.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use domain::ids::NationalId;
use domain::offices::{Facilities, NeighbourhoodPrefix, Shift, ShiftSeats, SpecialNeeds, rank};

fn national_ids(c: &mut Criterion) {
    c.bench_function("NationalId::parse ascii", |b| b.iter(|| NationalId::parse(black_box("2580200606"))));
    c.bench_function("NationalId::parse persian with dashes", |b| {
        b.iter(|| NationalId::parse(black_box("۲۵۸-۰۲۰۰۶-۰۶")))
    });
}

fn rows(n: u32) -> Vec<ShiftSeats<u32>> {
    (0..n)
        .map(|i| ShiftSeats {
            office_id: i / 2,
            office_phone: format!("{:08}", 22_000_000 + (i * 7919) % 9_999_999),
            facilities: Facilities {
                step_free_access: i % 3 == 0,
                eye_exception_capture: i % 5 == 0,
                fingerprint_exception_capture: i % 7 == 0,
                home_visits: false,
            },
            shift: if i % 2 == 0 { Shift::Morning } else { Shift::Afternoon },
            approved: 20 + i % 30,
            free: (i * 13) % 20,
        })
        .collect()
}

fn ranking(c: &mut Criterion) {
    let data = rows(10_000);
    let near = NeighbourhoodPrefix::from_phone("22711234").expect("phone");
    let needs = SpecialNeeds { can_climb_stairs: false, ..SpecialNeeds::TYPICAL };
    c.bench_function("rank 10,000 office-shift rows", |b| b.iter(|| rank(black_box(data.clone()), None, Some(&near))));
    c.bench_function("rank 10,000 rows with a special-needs filter", |b| {
        b.iter(|| rank(black_box(data.clone()), Some(&needs), Some(&near)))
    });
}

criterion_group!(benches, national_ids, ranking);
criterion_main!(benches);
