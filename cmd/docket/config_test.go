package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithBinaryParameters(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://u@h:5432/db?binary_parameters=yes&sslmode=disable",
		withBinaryParameters("postgres://u@h:5432/db?sslmode=disable"))
	require.Equal(t, "postgres://u@h/db?binary_parameters=no",
		withBinaryParameters("postgres://u@h/db?binary_parameters=no"), "an operator's choice stands")
	require.Equal(t, "host=h dbname=db", withBinaryParameters("host=h dbname=db"), "key=value DSNs are left alone")
}
