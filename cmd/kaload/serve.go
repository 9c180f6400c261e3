package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

type serveOptions struct{}

func newCmdServe(s *streams, runF func(context.Context, *serveOptions) error) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "not yet implemented",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("serve: not yet implemented")
		},
	}
}
