//! Summary statistics and Welch's confidence interval for a difference of means.
//!
//! The Student t quantile is computed from the t distribution function,
//! which is expressed through the regularized incomplete beta function
//! (evaluated as a continued fraction with the modified Lentz method) and
//! inverted by bisection. Accuracy is about 1e-9, far beyond what the
//! report prints.

/// Count, mean, variance and max of a sample, accumulated in one pass with
/// Welford's update, which avoids the cancellation of sum-of-squares formulas.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    count: usize,
    mean: f64,
    /// Sum of squared deviations from the running mean.
    squared_deviations: f64,
    max: f64,
}

impl Summary {
    pub fn from_values(values: impl IntoIterator<Item = f64>) -> Summary {
        let mut summary = Summary::default();
        for value in values {
            summary.add(value);
        }
        summary
    }

    pub fn add(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.squared_deviations += delta * (value - self.mean);
        if self.count == 1 || value > self.max {
            self.max = value;
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Mean, or `None` for an empty sample.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// Sample variance (divisor n - 1), or `None` with fewer than two values.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 1).then(|| self.squared_deviations / (self.count - 1) as f64)
    }

    /// Sample standard deviation (divisor n - 1), or `None` with fewer than two values.
    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }
}

/// Confidence interval for `mean(second) - mean(first)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanDifference {
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    /// Welch-Satterthwaite degrees of freedom. It is infinite when both
    /// samples are constant, which makes the interval a single point.
    pub degrees_of_freedom: f64,
    /// Two-sided coverage, for example 0.95.
    pub confidence: f64,
}

/// Position of zero relative to a confidence interval for a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The interval contains zero.
    NoSignificantDifference,
    /// The whole interval is above zero: the second sample is larger.
    Higher,
    /// The whole interval is below zero: the second sample is smaller.
    Lower,
}

impl MeanDifference {
    pub fn verdict(&self) -> Verdict {
        if self.low > 0.0 {
            Verdict::Higher
        } else if self.high < 0.0 {
            Verdict::Lower
        } else {
            Verdict::NoSignificantDifference
        }
    }

    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// Welch's t interval for `mean(second) - mean(first)`, which does not
/// assume equal variances. Returns `None` unless both samples have at least
/// two values.
///
/// The interval assumes independent samples. CPU samples taken one after
/// another are autocorrelated, so for them it is narrower than it should be.
pub fn welch_interval(
    first: &Summary,
    second: &Summary,
    confidence: f64,
) -> Option<MeanDifference> {
    let first_share = first.variance()? / first.count() as f64;
    let second_share = second.variance()? / second.count() as f64;
    let difference = second.mean()? - first.mean()?;
    let standard_error = (first_share + second_share).sqrt();

    if standard_error == 0.0 {
        return Some(MeanDifference {
            difference,
            low: difference,
            high: difference,
            degrees_of_freedom: f64::INFINITY,
            confidence,
        });
    }

    let degrees_of_freedom = (first_share + second_share).powi(2)
        / (first_share.powi(2) / (first.count() - 1) as f64
            + second_share.powi(2) / (second.count() - 1) as f64);
    let half_width =
        student_t_quantile(0.5 + confidence / 2.0, degrees_of_freedom) * standard_error;
    Some(MeanDifference {
        difference,
        low: difference - half_width,
        high: difference + half_width,
        degrees_of_freedom,
        confidence,
    })
}

/// Confidence interval for the mean of one sample, with bounds `low` and `high`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanInterval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    /// Two-sided coverage, for example 0.95.
    pub confidence: f64,
}

/// Student's t interval for the mean of `sample`: mean ± t(n - 1) × s / √n.
/// Returns `None` unless the sample has at least two values.
///
/// Like [`welch_interval`], it assumes independent values, so for
/// autocorrelated CPU samples it is narrower than it should be.
pub fn mean_interval(sample: &Summary, confidence: f64) -> Option<MeanInterval> {
    let mean = sample.mean()?;
    let standard_error = (sample.variance()? / sample.count() as f64).sqrt();
    let half_width = if standard_error == 0.0 {
        0.0
    } else {
        let degrees_of_freedom = (sample.count() - 1) as f64;
        student_t_quantile(0.5 + confidence / 2.0, degrees_of_freedom) * standard_error
    };
    Some(MeanInterval {
        mean,
        low: mean - half_width,
        high: mean + half_width,
        confidence,
    })
}

/// Computes the interval for a mean CPU share, with the low bound raised to 0 %.
///
/// A process cannot use less than no CPU, but with few, spread samples the
/// t interval reaches below zero, which reads as an error in a report.
pub fn cpu_interval(sample: &Summary, confidence: f64) -> Option<MeanInterval> {
    let mut interval = mean_interval(sample, confidence)?;
    interval.low = interval.low.max(0.0);
    Some(interval)
}

/// Largest degrees of freedom used as given. Above it the t distribution is
/// within 1e-7 of the normal one, while the log-gamma terms of the incomplete
/// beta function grow large enough to lose precision, so larger values are
/// clamped to it.
const MAX_DEGREES_OF_FREEDOM: f64 = 1e8;

/// Distribution function of Student's t with `df` degrees of freedom (df > 0).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let df = df.min(MAX_DEGREES_OF_FREEDOM);
    let x = df / (df + t * t);
    // P(|T| > |t|) = I_x(df/2, 1/2).
    let two_tailed = regularized_incomplete_beta(x, df / 2.0, 0.5);
    if t >= 0.0 {
        1.0 - two_tailed / 2.0
    } else {
        two_tailed / 2.0
    }
}

/// Quantile of Student's t with `df` degrees of freedom, for 0 < p < 1.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    assert!(
        p > 0.0,
        "t quantile of probability {p}, expected more than 0"
    );
    assert!(
        p < 1.0,
        "t quantile of probability {p}, expected less than 1"
    );
    assert!(
        df > 0.0,
        "t quantile with {df} degrees of freedom, expected more than 0"
    );
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }

    // Bracket the quantile, then bisect: the distribution function is
    // monotonic, so bisection always converges. With df = 1 and
    // p = 1 - 1e-12 the quantile is about 3e11, within 40 doublings.
    let mut low = 0.0;
    let mut high = 1.0;
    for _ in 0..1100 {
        if student_t_cdf(high, df) >= p {
            break;
        }
        low = high;
        high *= 2.0;
    }
    for _ in 0..200 {
        let middle = (low + high) / 2.0;
        if student_t_cdf(middle, df) < p {
            low = middle;
        } else {
            high = middle;
        }
        if high - low <= 1e-12 * high.max(1.0) {
            break;
        }
    }
    (low + high) / 2.0
}

/// Regularized incomplete beta function I_x(a, b) for 0 <= x <= 1, a, b > 0.
fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    // x^a (1-x)^b / B(a, b), the common factor of the continued fraction.
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast only below this point. Above it,
    // the symmetry I_x(a, b) = 1 - I_(1-x)(b, a) moves x below it.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

/// Evaluates 1 / (1 + d1 / (1 + d2 / (1 + ...))), the continued fraction of
/// the incomplete beta function, where
/// d(2m+1) = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)) and
/// d(2m) = m(b-m) x / ((a+2m-1)(a+2m)).
fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    // Stands in for a zero denominator, as the modified Lentz method prescribes.
    const TINY: f64 = 1e-300;
    const EPSILON: f64 = 1e-15;
    const MAX_TERMS: usize = 10_000;

    let guard = |value: f64| if value.abs() < TINY { TINY } else { value };
    // The value is built as a running product f of ratios C * D.
    let mut f = 1.0;
    let mut c = 1.0;
    let mut d = 0.0;
    for j in 1..=MAX_TERMS {
        let m = (j / 2) as f64;
        let numerator = if j % 2 == 1 {
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
        } else {
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
        };
        d = 1.0 / guard(1.0 + numerator * d);
        c = guard(1.0 + numerator / c);
        let ratio = c * d;
        f *= ratio;
        if (ratio - 1.0).abs() < EPSILON {
            break;
        }
    }
    1.0 / f
}

/// Natural log of the gamma function for x > 0, by the Lanczos
/// approximation with g = 7 and nine coefficients (relative error near 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut series = COEFFICIENTS[0];
    for (i, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        series += coefficient / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} differs from {expected} by more than {tolerance}"
        );
    }

    /// Mean, sample standard deviation and max of a small sample match hand values.
    #[test]
    fn summary_known_sample() {
        let summary = Summary::from_values([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(summary.count(), 8);
        assert_close(summary.mean().expect("mean"), 5.0, 1e-12);
        // Squared deviations sum to 32, so the sample variance is 32 / 7.
        assert_close(summary.variance().expect("variance"), 32.0 / 7.0, 1e-12);
        assert_close(
            summary.std_dev().expect("std dev"),
            (32.0f64 / 7.0).sqrt(),
            1e-12,
        );
        assert_eq!(summary.max(), Some(9.0));
    }

    /// Empty and single-value samples have no spread.
    #[test]
    fn summary_small_samples() {
        let empty = Summary::from_values([]);
        assert_eq!(empty.mean(), None);
        assert_eq!(empty.max(), None);
        let single = Summary::from_values([-3.0]);
        assert_eq!(single.mean(), Some(-3.0));
        assert_eq!(single.max(), Some(-3.0));
        assert_eq!(single.std_dev(), None);
    }

    /// ln Γ matches factorials and Γ(1/2) = √π.
    #[test]
    fn ln_gamma_known_values() {
        assert_close(ln_gamma(1.0), 0.0, 1e-13);
        assert_close(ln_gamma(5.0), 24f64.ln(), 1e-13);
        assert_close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-13);
        assert_close(ln_gamma(101.0), 363.739_375_555_563_5, 1e-9);
    }

    /// The t distribution function matches the closed forms for 1 and 2 degrees of freedom.
    #[test]
    fn t_cdf_closed_forms() {
        for t in [-5.0, -1.0, -0.3, 0.0, 0.7, 2.0, 40.0] {
            let cauchy = 0.5 + f64::atan(t) / std::f64::consts::PI;
            assert_close(student_t_cdf(t, 1.0), cauchy, 1e-12);
            let two = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
            assert_close(student_t_cdf(t, 2.0), two, 1e-12);
        }
    }

    /// The 97.5 % quantile matches published t tables.
    #[test]
    fn t_quantile_table_values() {
        let table = [
            (1.0, 12.706_204_736),
            (2.0, 4.302_652_730),
            (3.0, 3.182_446_305),
            (5.0, 2.570_581_836),
            (10.0, 2.228_138_852),
            (30.0, 2.042_272_456),
            (100.0, 1.983_971_519),
            (1000.0, 1.962_339_081),
            (1e9, 1.959_963_985),
        ];
        for (df, expected) in table {
            assert_close(student_t_quantile(0.975, df), expected, 1e-6);
        }
        assert_close(student_t_quantile(0.025, 5.0), -2.570_581_836, 1e-6);
        assert_eq!(student_t_quantile(0.5, 7.0), 0.0);
    }

    /// Welch's interval for two small samples matches a hand computation.
    #[test]
    fn welch_known_samples() {
        let first = Summary::from_values([1.0, 2.0, 3.0, 4.0, 5.0]);
        let second = Summary::from_values([2.0, 4.0, 6.0, 8.0, 10.0]);
        let interval = welch_interval(&first, &second, 0.95).expect("both samples have spread");

        // Variances 2.5 and 10 over n = 5: standard error √2.5, and
        // df = 2.5² / (0.5² / 4 + 2² / 4) = 100 / 17.
        assert_close(interval.difference, 3.0, 1e-12);
        assert_close(interval.degrees_of_freedom, 100.0 / 17.0, 1e-12);
        let half_width = student_t_quantile(0.975, 100.0 / 17.0) * 2.5f64.sqrt();
        assert_close(interval.low, 3.0 - half_width, 1e-12);
        assert_close(interval.high, 3.0 + half_width, 1e-12);
        assert_close(half_width, WELCH_HALF_WIDTH, 1e-6);
        assert_eq!(interval.verdict(), Verdict::NoSignificantDifference);
    }

    /// t(0.975, 100/17) × √2.5, from numeric integration of the t density
    /// (Simpson's rule, 200 000 steps) and bisection in Python.
    const WELCH_HALF_WIDTH: f64 = 3.887_741_643_737_342;

    /// Clearly separated samples get a verdict with the right sign.
    #[test]
    fn welch_verdict_sign() {
        let low = Summary::from_values([10.0, 11.0, 9.0, 10.5, 9.5]);
        let high = Summary::from_values([20.0, 21.0, 19.0, 20.5, 19.5]);
        let up = welch_interval(&low, &high, 0.95).expect("spread");
        assert_eq!(up.verdict(), Verdict::Higher);
        let down = welch_interval(&high, &low, 0.95).expect("spread");
        assert_eq!(down.verdict(), Verdict::Lower);
        assert!(down.contains(-10.0));
    }

    /// The one-sample interval matches a hand computation and needs two values.
    #[test]
    fn mean_interval_known_sample() {
        let sample = Summary::from_values([1.0, 2.0, 3.0, 4.0, 5.0]);
        let interval = mean_interval(&sample, 0.95).expect("five values");

        // Variance 2.5 over n = 5: standard error √0.5, and t(0.975, 4) = 2.776445105.
        let half_width = 2.776_445_105 * 0.5f64.sqrt();
        assert_close(interval.mean, 3.0, 1e-12);
        assert_close(interval.low, 3.0 - half_width, 1e-6);
        assert_close(interval.high, 3.0 + half_width, 1e-6);
        assert!(mean_interval(&Summary::from_values([1.0]), 0.95).is_none());
    }

    /// Two spread CPU samples give a t interval below zero. The CPU
    /// interval stops at 0 % and keeps the mean and the high bound.
    #[test]
    fn cpu_interval_low_bound_zero() {
        let sample = Summary::from_values([1.0, 40.0]);
        let plain = mean_interval(&sample, 0.95).unwrap();
        assert!(plain.low < 0.0, "t interval low {}", plain.low);

        let cpu = cpu_interval(&sample, 0.95).unwrap();
        assert_eq!(cpu.low, 0.0);
        assert_eq!(cpu.high, plain.high);
        assert_eq!(cpu.mean, 20.5);
    }

    /// Constant samples give a point interval; single values give none.
    #[test]
    fn welch_degenerate_samples() {
        let first = Summary::from_values([3.0, 3.0]);
        let second = Summary::from_values([5.0, 5.0, 5.0]);
        let point = welch_interval(&first, &second, 0.95).expect("two values each");
        assert_eq!((point.low, point.high), (2.0, 2.0));
        assert_eq!(point.verdict(), Verdict::Higher);
        assert!(welch_interval(&Summary::from_values([1.0]), &second, 0.95).is_none());
    }
}
