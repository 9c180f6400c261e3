package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

type reportOptions struct{}

func newCmdReport(s *streams, runF func(context.Context, *reportOptions) error) *cobra.Command {
	return &cobra.Command{
		Use:   "report",
		Short: "not yet implemented",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("report: not yet implemented")
		},
	}
}
