//! The framers on streams built by hand, fed in every chunk size: the header is exactly what
//! precedes the first cluster (page of audio), and every place marked `sync` is one.

use super::*;

/// A live WebM as `MediaRecorder` writes it: EBML header, a Segment and Clusters of unknown
/// size. Returns the stream and where each Cluster starts.
fn webm() -> (Vec<u8>, Vec<usize>) {
    let mut s = vec![0x1A, 0x45, 0xDF, 0xA3, 0x84, 1, 2, 3, 4];
    s.extend([
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    s.extend([0x15, 0x49, 0xA9, 0x66, 0x83, 7, 7, 7]);
    s.extend([0x16, 0x54, 0xAE, 0x6B, 0x82, 8, 8]);
    let mut clusters = Vec::new();
    for n in 0..3u8 {
        clusters.push(s.len());
        s.extend([
            0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        s.extend([0xE7, 0x81, n]);
        // A SimpleBlock whose payload holds a Cluster id: not a boundary.
        s.extend([0xA3, 0x86, 0x1F, 0x43, 0xB6, 0x75, n, n]);
        // And one with a two-byte size.
        s.extend([0xA3, 0x40, 0x03, 9, 9, n]);
    }
    (s, clusters)
}

fn ogg_page(granule: u64, body: &[u8]) -> Vec<u8> {
    let mut p = b"OggS".to_vec();
    p.extend([0, 0]);
    p.extend(granule.to_le_bytes());
    p.extend([0; 12]);
    p.push(1);
    p.push(body.len() as u8);
    p.extend(body);
    p
}

/// Feeds `stream` in chunks of `size`; returns the header, the media and the media offsets
/// marked `sync`.
fn split(kind: &str, stream: &[u8], size: usize) -> (Vec<u8>, Vec<u8>, Vec<usize>, bool) {
    let mut f = Framer::for_type(kind);
    let mut out = Vec::new();
    for chunk in stream.chunks(size) {
        f.push(chunk, &mut out);
    }
    let (mut header, mut media, mut syncs) = (Vec::new(), Vec::new(), Vec::new());
    for p in out {
        match p {
            Piece::Header(b) => {
                assert!(media.is_empty(), "header after media");
                header.extend(b);
            }
            Piece::Media { bytes, sync } => {
                if sync {
                    syncs.push(header.len() + media.len());
                }
                media.extend(bytes);
            }
        }
    }
    (header, media, syncs, f.gave_up())
}

#[test]
fn webm_is_cut_at_clusters_in_any_chunking() {
    let (stream, clusters) = webm();
    for size in 1..=stream.len() {
        let (header, media, syncs, gave_up) = split("audio/webm", &stream, size);
        assert!(!gave_up, "size {size}");
        assert_eq!(header, stream[..clusters[0]], "size {size}");
        assert_eq!(media, stream[clusters[0]..], "size {size}");
        assert_eq!(syncs, clusters, "size {size}");
    }
}

#[test]
fn ogg_is_cut_at_pages_after_its_header_pages() {
    let head = [ogg_page(0, b"OpusHead"), ogg_page(0, b"OpusTags")].concat();
    let audio = [
        ogg_page(960, b"a1"),
        ogg_page(u64::MAX, b"a2"),
        ogg_page(1920, b"a3"),
    ];
    let stream = [head.clone(), audio.concat()].concat();
    let starts = [
        head.len(),
        head.len() + audio[0].len(),
        head.len() + audio[0].len() + audio[1].len(),
    ];
    for size in 1..=stream.len() {
        let (header, media, syncs, gave_up) = split("audio/ogg", &stream, size);
        assert!(!gave_up);
        assert_eq!(header, head, "size {size}");
        assert_eq!(media, audio.concat(), "size {size}");
        assert_eq!(syncs, starts, "size {size}");
    }
}

#[test]
fn mp3_goes_through_as_it_comes_and_garbage_is_passed_on() {
    let (header, media, syncs, _) = split("audio/mpeg", b"abcdef", 4);
    assert_eq!(
        (header.len(), media, syncs),
        (0, b"abcdef".to_vec(), vec![0, 4])
    );

    let garbage = b"not an ogg stream at all, only words";
    let (header, media, syncs, gave_up) = split("audio/ogg", garbage, 5);
    assert!(gave_up);
    assert!(header.is_empty() && syncs.is_empty());
    assert_eq!(media, garbage);

    let mut bad = webm().0[..9].to_vec();
    bad.extend([0x00, 1, 2, 3]);
    let (header, media, _, gave_up) = split("audio/webm", &bad, 3);
    assert!(gave_up);
    assert_eq!([header, media].concat(), bad);
}
