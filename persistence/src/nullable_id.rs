//! How a row holds an optional record id (`Option<ApplicationId>`, `Option<OfficeId>`, …):
//! as nullable text, the way a required one goes through `String`
//! (`#[diesel(deserialize_as = String, serialize_as = String)]`). `Option<String>` cannot
//! be used for that (no conversion between two foreign types may be written here), so an
//! optional id field says `#[diesel(deserialize_as = NullableText, serialize_as = NullableText)]`.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::sql_types::{Nullable, Text};

/// Nullable text on its way between a column and an `Option` of an id.
#[derive(Debug, FromSqlRow)]
pub struct NullableText(Option<String>);

impl<T: Into<String>> From<Option<T>> for NullableText {
    fn from(id: Option<T>) -> Self {
        Self(id.map(Into::into))
    }
}

impl<T: From<String>> From<NullableText> for Option<T> {
    fn from(text: NullableText) -> Self {
        text.0.map(T::from)
    }
}

impl<DB> FromSql<Nullable<Text>, DB> for NullableText
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Self(Some(String::from_sql(bytes)?)))
    }

    fn from_nullable_sql(bytes: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        bytes.map(String::from_sql).transpose().map(Self)
    }
}

impl AsExpression<Nullable<Text>> for NullableText {
    type Expression = <Option<String> as AsExpression<Nullable<Text>>>::Expression;

    fn as_expression(self) -> Self::Expression {
        AsExpression::<Nullable<Text>>::as_expression(self.0)
    }
}
