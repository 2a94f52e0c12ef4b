//! Small dense linear algebra in f64 (build time only).

/// Inverse of the row-major `n × n` matrix `m` by Gauss-Jordan elimination with partial
/// pivoting; `None` when it is singular (a pivot below `n · ε · max|m|`) or sizes disagree.
pub fn invert(m: &[f64], n: usize) -> Option<Vec<f64>> {
    if m.len() != n.checked_mul(n)? {
        return None;
    }
    let norm = m.iter().fold(0.0f64, |a, &x| a.max(x.abs()));
    if !(norm > 0.0) || !norm.is_finite() {
        return None;
    }
    let tol = norm * (n as f64) * f64::EPSILON;
    let w = 2 * n;
    let mut a = vec![0.0f64; n * w];
    for r in 0..n {
        for c in 0..n {
            a[r * w + c] = m[r * n + c];
        }
        a[r * w + n + r] = 1.0;
    }
    for col in 0..n {
        let pivot =
            (col..n).max_by(|&i, &j| a[i * w + col].abs().total_cmp(&a[j * w + col].abs()))?;
        if a[pivot * w + col].abs() <= tol {
            return None;
        }
        if pivot != col {
            for c in 0..w {
                a.swap(pivot * w + c, col * w + c);
            }
        }
        let p = a[col * w + col];
        for c in 0..w {
            a[col * w + c] /= p;
        }
        for r in 0..n {
            if r != col {
                let f = a[r * w + col];
                if f != 0.0 {
                    for c in 0..w {
                        a[r * w + c] -= f * a[col * w + c];
                    }
                }
            }
        }
    }
    let inv: Vec<f64> = (0..n)
        .flat_map(|r| a[r * w + n..r * w + w].to_vec())
        .collect();
    inv.iter().all(|x| x.is_finite()).then_some(inv)
}

#[cfg(test)]
mod tests {
    #[test]
    fn inverts_and_rejects_singular() {
        let inv = super::invert(&[2.0, 1.0, 1.0, 3.0], 2).unwrap();
        let want = [0.6, -0.2, -0.2, 0.4];
        for (a, b) in inv.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{inv:?}");
        }
        assert!(super::invert(&[1.0, 2.0, 2.0, 4.0], 2).is_none());
        assert!(super::invert(&[1.0, 2.0, 3.0], 2).is_none());
    }
}
