//! A fixed-capacity list on the stack: the guard allocates nothing per question.

/// Up to `N` copies of `T`; a push beyond that is refused and remembered.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounded<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
    overflowed: bool,
}

impl<T: Copy + Default, const N: usize> Default for Bounded<T, N> {
    fn default() -> Self {
        Bounded { items: [T::default(); N], len: 0, overflowed: false }
    }
}

impl<T: Copy + Default, const N: usize> Bounded<T, N> {
    /// Appends `item`, or notes the overflow when full.
    pub fn push(&mut self, item: T) {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = item;
                self.len += 1;
            }
            None => self.overflowed = true,
        }
    }

    pub fn as_slice(&self) -> &[T] {
        self.items.get(..self.len).unwrap_or(&[])
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.items.get_mut(..self.len).unwrap_or(&mut [])
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub fn last_mut(&mut self) -> Option<&mut T> {
        self.as_mut_slice().last_mut()
    }
}

impl<T: Copy + Default + PartialEq, const N: usize> Bounded<T, N> {
    pub fn contains(&self, item: &T) -> bool {
        self.as_slice().contains(item)
    }

    /// Appends `item` unless it is already there.
    pub fn insert(&mut self, item: T) {
        if !self.contains(&item) {
            self.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bounded;

    #[test]
    fn a_full_list_refuses_and_remembers() {
        let mut list: Bounded<u8, 2> = Bounded::default();
        list.push(1);
        list.insert(1);
        list.push(2);
        assert!(!list.overflowed());
        list.push(3);
        assert_eq!(list.as_slice(), &[1, 2]);
        assert!(list.overflowed());
    }
}
