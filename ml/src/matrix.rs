//! A borrowed, row-major matrix of `f64` features: what the models read.
//!
//! Owns: shape checks and row access over a slice the caller keeps.
//! Never: copies the data (the models train and score in place).

/// `rows × cols` values, row after row.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    data: &'a [f64],
    rows: usize,
    cols: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
/// Why values do not make a feature matrix.
pub enum MatrixError {
    #[error("{len} values are not a whole number of rows of {cols} columns")]
    /// The values do not fill whole rows.
    Shape {
        /// Values given.
        len: usize,
        /// Columns asked for.
        cols: usize,
    },
    #[error("a matrix needs at least one column")]
    /// Zero columns.
    NoColumns,
    #[error("row {row}, column {col}: {value} is not a finite number")]
    /// A value that is NaN or infinite (where).
    NotFinite {
        /// Its row.
        row: usize,
        /// Its column.
        col: usize,
        /// The value.
        value: f64,
    },
}

impl<'a> Matrix<'a> {
    /// A view of `data` as rows of `cols` values; every value must be finite.
    pub fn new(data: &'a [f64], cols: usize) -> Result<Matrix<'a>, MatrixError> {
        if cols == 0 {
            return Err(MatrixError::NoColumns);
        }
        if data.len() % cols != 0 {
            return Err(MatrixError::Shape {
                len: data.len(),
                cols,
            });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(MatrixError::NotFinite {
                row: i / cols,
                col: i % cols,
                value: data[i],
            });
        }
        Ok(Matrix {
            data,
            rows: data.len() / cols,
            cols,
        })
    }

    /// Rows (clients).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Value at row `i`, column `j`.
    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// Rows `start..end` as a matrix (for splitting work across threads).
    pub fn slice_rows(&self, start: usize, end: usize) -> Matrix<'a> {
        Matrix {
            data: &self.data[start * self.cols..end * self.cols],
            rows: end - start,
            cols: self.cols,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_values_are_checked() {
        let d = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let m = Matrix::new(&d, 3).unwrap();
        assert_eq!((m.rows(), m.cols()), (2, 3));
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);
        assert_eq!(m.at(0, 2), 3.0);
        assert_eq!(m.slice_rows(1, 2).row(0), &[4.0, 5.0, 6.0]);
        assert_eq!(
            Matrix::new(&d, 4).unwrap_err(),
            MatrixError::Shape { len: 6, cols: 4 }
        );
        assert_eq!(Matrix::new(&d, 0).unwrap_err(), MatrixError::NoColumns);
        let bad = [1.0, f64::NAN];
        assert!(matches!(
            Matrix::new(&bad, 2),
            Err(MatrixError::NotFinite { row: 0, col: 1, .. })
        ));
    }
}
