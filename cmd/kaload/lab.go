package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

type labOptions struct{}

func newCmdLab(s *streams, runF func(context.Context, *labOptions) error) *cobra.Command {
	return &cobra.Command{
		Use:   "lab",
		Short: "not yet implemented",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("lab: not yet implemented")
		},
	}
}
