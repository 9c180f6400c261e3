package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

type hammerOptions struct{}

func newCmdHammer(s *streams, runF func(context.Context, *hammerOptions) error) *cobra.Command {
	return &cobra.Command{
		Use:   "hammer",
		Short: "not yet implemented",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("hammer: not yet implemented")
		},
	}
}
